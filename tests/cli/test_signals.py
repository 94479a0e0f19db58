import os
import signal

import pytest

from psykedelic_cli.cli.common import stop_gracefully_on_termination
from psykedelic_cli.errors import Terminated, run_outcome


def test_sigterm_raises_terminated_and_the_old_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    with pytest.raises(Terminated) as caught:
        with stop_gracefully_on_termination():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
    assert caught.value.signal_number == signal.SIGTERM
    assert run_outcome(caught.value) == ("interrupted", "terminated by SIGTERM")
    assert isinstance(caught.value, KeyboardInterrupt)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


def test_a_second_signal_during_cleanup_is_ignored():
    with pytest.raises(Terminated):
        with stop_gracefully_on_termination():
            try:
                os.kill(os.getpid(), signal.SIGHUP)
                for _ in range(1000):
                    pass
            finally:
                # the first signal is being handled: another one must not cut the cleanup short
                assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
                assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):
                    pass


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_gracefully_on_termination():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)  # would raise Terminated if it were watched
            for _ in range(1000):
                pass
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_ctrl_c_reads_as_the_user_and_other_errors_fail_the_run():
    assert run_outcome(KeyboardInterrupt()) == ("interrupted", "interrupted by the user (Ctrl-C)")
    assert run_outcome(ValueError("bad shape\nmore detail")) == ("failed", "ValueError: bad shape")
