"""The chat personas (Carla, Dan, Vera, Gus) and the broadcast recorders live in the root
conftest.py, shared with escalation/ and analytics/."""
