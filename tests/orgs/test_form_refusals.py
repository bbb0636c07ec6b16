"""A service's refusal on a page's form: at the field it names, in words, never as a field key."""

from django import forms

from apps.core.errors import ApplicationError
from apps.orgs.mixins import form_error_from


class NameForm(forms.Form):
    name = forms.CharField(label="Name")


def refused(detail: dict) -> NameForm:
    form = NameForm({"name": "Acme"})
    assert form.is_valid()
    form_error_from(form, ApplicationError("The organization cannot be saved.", detail=detail))
    return form


def test_a_refusal_naming_a_field_of_the_form_is_shown_at_that_field():
    form = refused({"name": ["A project with this name exists."]})
    assert form.errors == {"name": ["A project with this name exists."]}


def test_a_detail_the_form_has_no_field_for_is_shown_at_the_top_in_words_without_its_key():
    form = refused({"name": ["Too long."], "monthly_budget_usd": ["Must be zero or more."]})
    assert form.errors["name"] == ["Too long."]
    assert form.non_field_errors() == ["The organization cannot be saved. Must be zero or more."]
    assert "monthly_budget_usd" not in str(form.errors)


def test_a_refusal_without_detail_is_shown_at_the_top():
    assert refused({}).non_field_errors() == ["The organization cannot be saved."]
