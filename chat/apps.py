from django.apps import AppConfig


class ChatConfig(AppConfig):
    """The chat transport: the runner and its one turn scheduler, the sockets (widget, console,
    organization), the HTTP chat API and the widget's pages. It may import every floor below;
    none of them imports it."""

    name = "chat"
