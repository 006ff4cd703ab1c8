"""Advisory locks by name: one holder across connections, released on exit and on a lost
connection."""

import threading

import pytest
from django.db import connection, connections

from config.locks import lock_key, try_lock

pytestmark = pytest.mark.django_db(transaction=True)


def _in_other_connection(fn):
    """Run `fn` in a thread, which Django gives its own database connection."""
    result = {}

    def run():
        try:
            result["value"] = fn()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    return result["value"]


def _try(name):
    def attempt():
        with try_lock(name) as held:
            return held

    return attempt


def test_keys_are_stable_and_distinct():
    assert lock_key("adapter:1") == lock_key("adapter:1")
    assert lock_key("adapter:1") != lock_key("adapter:2")
    assert -(2**63) <= lock_key("x") < 2**63


def test_one_holder_at_a_time_and_free_again_after_the_block():
    with try_lock("adapter:7") as held:
        assert held
        assert _in_other_connection(_try("adapter:7")) is False
        assert _in_other_connection(_try("adapter:8")) is True  # another name is free
    assert _in_other_connection(_try("adapter:7")) is True


def test_a_lost_connection_takes_its_lock_along():
    holding = threading.Event()
    release = threading.Event()

    def hold_and_die():
        # Entered and never exited, as in a process killed inside the block.
        lock = try_lock("adapter:9")  # referenced: a collected generator would unlock
        assert lock.__enter__()
        holding.set()
        release.wait(10)
        connection.close()  # what the kernel does to a killed process's socket

    thread = threading.Thread(target=hold_and_die)
    thread.start()
    assert holding.wait(10)
    assert _in_other_connection(_try("adapter:9")) is False
    release.set()
    thread.join(10)
    assert _in_other_connection(_try("adapter:9")) is True
