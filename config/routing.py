from django.urls import path

from bots.consumers import OrganizationConsumer

websocket_urlpatterns = [
    path("ws/o/<slug:org>/", OrganizationConsumer.as_asgi()),
]
