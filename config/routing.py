from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.urls import path, re_path

from chat.consumers.console import ConsoleConsumer
from chat.consumers.members import OrganizationConsumer
from chat.consumers.widget import WidgetConsumer
from config.origins import OwnOriginValidator

# Members' sockets: signed in through the session cookie, from our own pages only.
websocket_urlpatterns = [
    path("ws/o/<slug:org>/", OrganizationConsumer.as_asgi()),
    # The agent console: the organization's group, plus the conversation it has open.
    path("ws/o/<slug:org>/console/", ConsoleConsumer.as_asgi()),
]

# The widget's socket, opened by the sites that embed a bot: the consumer checks the origin
# against that bot's allowed origins, and never reads a cookie.
widget_urlpatterns = [
    path("ws/widget/<str:public_key>/", WidgetConsumer.as_asgi()),
]


def websocket_application():
    """Every socket: the widget's first, then the members', from this server's own pages only
    (config.origins)."""
    members = OwnOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
    # `^` matches every path and leaves it whole for the members' router.
    return URLRouter([*widget_urlpatterns, re_path(r"^", members)])
