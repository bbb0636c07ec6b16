from django.urls import path

from apps.integrations import views

ORG = "o/<slug:org_slug>/"
urlpatterns = [
    path(ORG + "connectors/", views.ConnectorListView.as_view(), name="connectors"),
    path(ORG + "connectors/<int:pk>/", views.ConnectorDetailView.as_view(), name="connector-detail"),
    path(ORG + "connectors/<int:pk>/test/", views.ConnectorTestView.as_view(), name="connector-test"),
    path(ORG + "connectors/<int:pk>/delete/", views.ConnectorDeleteView.as_view(), name="connector-delete"),
    path(ORG + "deliveries/<int:pk>/", views.DeliveryDetailView.as_view(), name="delivery-detail"),
    path(ORG + "deliveries/<int:pk>/redeliver/", views.DeliveryRedeliverView.as_view(), name="delivery-redeliver"),
    path(ORG + "connectors/<int:pk>/inbound-secret/", views.InboundSecretRotateView.as_view(), name="inbound-rotate"),
    path("hooks/in/<str:inbound_id>/", views.inbound, name="inbound"),
]
