"""Deploys and broker restarts lose nothing, on the real stack.

A rolling deploy stops a worker with SIGTERM in the middle of steps; a broker may be killed with
jobs in flight. Either way every job ends, and no video is paid for twice.
"""

import io
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import kombu
import pytest
from django.core.management import call_command
from django.utils import timezone

from harness.faults import RedisServer, TcpProxy, redis_server_available
from runway_simulator import RunwaySimulator
from tests.stack import (
    BROKERS,
    LOG_DIR,
    RabbitMQBroker,
    RedisBroker,
    Stack,
    StackBroker,
    session_broker,
    stack_broker,
    wait_for_jobs,
    wait_until,
)
from videos.catalog import VideoRequest
from videos.models import Status, VideoGeneration
from videos.services import creation

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


class BrokerOutage:
    """A broker of the test's own that a test takes away (`begin`) and brings back (`end`)."""

    def __init__(self, broker: StackBroker, *, take_away: Callable[[], None], bring_back: Callable[[], None]) -> None:
        self.broker = broker
        self._take_away = take_away
        self._bring_back = bring_back
        self.away = False

    def begin(self) -> None:
        self._take_away()
        self.away = True

    def end(self) -> None:
        self._bring_back()
        self.away = False


@contextmanager
def redis_killed() -> Iterator[BrokerOutage]:
    """A redis-server of the test's own, killed with -9 and started again, empty, on the same port."""
    if not redis_server_available():
        pytest.skip("no redis-server on this machine")
    server = RedisServer(log_dir=LOG_DIR).start()
    try:
        yield BrokerOutage(
            RedisBroker(server.url, session_broker().queue), take_away=server.kill, bring_back=server.start
        )
    finally:
        server.close()


@contextmanager
def behind_a_proxy(name: str) -> Iterator[tuple[StackBroker, TcpProxy]]:
    """A broker of the test's own, reached through a proxy the test breaks: a redis-server it
    started, or the machine's RabbitMQ (never stopped itself)."""
    if name == "redis":
        if not redis_server_available():
            pytest.skip("no redis-server on this machine")
        server = RedisServer(log_dir=LOG_DIR).start()
        proxy = TcpProxy(server.port)
        try:
            yield RedisBroker(f"redis://127.0.0.1:{proxy.port}/0", session_broker().queue), proxy
        finally:
            proxy.close()
            server.close()
        return
    with stack_broker("rabbitmq") as direct:
        upstream = kombu.Connection(direct.url)
        proxy = TcpProxy(upstream.port or 5672, upstream_host=upstream.hostname or "127.0.0.1")
        proxied = upstream.clone(hostname="127.0.0.1", port=proxy.port)
        try:
            yield RabbitMQBroker(proxied.as_uri(include_password=True), direct.queue), proxy
        finally:
            proxy.close()


@contextmanager
def rabbitmq_cut_off() -> Iterator[BrokerOutage]:
    """The machine's RabbitMQ behind a proxy that resets every connection to it and refuses new ones
    until restored: the tests never stop the shared RabbitMQ itself."""
    with behind_a_proxy("rabbitmq") as (broker, proxy):
        yield BrokerOutage(broker, take_away=proxy.cut, bring_back=proxy.restore)


@pytest.fixture(params=["redis killed", "rabbitmq cut off"])
def broker_outage(request: pytest.FixtureRequest) -> Iterator[BrokerOutage]:
    with redis_killed() if request.param == "redis killed" else rabbitmq_cut_off() as outage:
        yield outage


def create_jobs(user, stack: Stack, prompts: list[str]) -> list[int]:
    """Jobs made through the service, as the web server makes them, sending to the stack's broker."""
    with stack.broker.sending():
        return [creation.generation_create(owner=user, request=VideoRequest(prompt=prompt)).pk for prompt in prompts]


def made_and_waiting(job: VideoGeneration) -> bool:
    """Made at Runway, and its next step waits on its countdown (held by the worker)."""
    return bool(job.runway_task_id) and job.next_check_at is not None and job.next_check_at > timezone.now()


def creates_per_prompt(simulator: RunwaySimulator) -> Counter[str]:
    return Counter(r.json["promptText"] for r in list(simulator.requests) if r.method == "POST")


def test_a_worker_stopped_by_a_deploy_finishes_its_steps_and_the_next_one_loses_nothing(
    user, stack_on_each_broker, settings
):
    stack = stack_on_each_broker
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 100
    simulator = stack.start(task_seconds=10.0)
    old = stack.worker()  # and no beat: its sweep would make up for a lost message
    waiting_prompts = [f"Waiting scene {i}" for i in range(6)]
    waiting = create_jobs(user, stack, waiting_prompts)
    wait_for_jobs(stack, waiting, made_and_waiting, seconds=30)
    # Runway now answers 30 s (of the simulator's clock) after each request: these creates are out
    # when the deploy stops the worker, while the first jobs' polls wait on their countdowns.
    simulator.set_network(latency=30.0)
    sending_prompts = [f"Mid-create scene {i}" for i in range(4)]
    sending = create_jobs(user, stack, sending_prompts)
    wait_until(lambda: simulator.creates == 10, seconds=30, stack=stack, what="the last four creates")
    stack.clock.wait_for_waiters(4, timeout=30)

    old.process.terminate()  # SIGTERM, as a rolling deploy (systemd, Kubernetes, supervisord) sends
    old.wait_for_log(r"Warm shutdown", seconds=10)
    stack.clock.advance(30.0)  # Runway answers the creates; the videos are made meanwhile
    old.process.wait(timeout=30)
    simulator.set_network(latency=0.0)
    new = stack.worker(takes_over=True)
    jobs = wait_for_jobs(stack, waiting + sending, lambda job: job.is_final, seconds=60)

    assert old.process.returncode == 0, old.tail()  # it stopped by itself, having finished its steps
    assert [job.status for job in jobs] == [Status.SUCCEEDED] * 10, [(job.pk, job.message) for job in jobs]
    assert simulator.creates == 10
    assert creates_per_prompt(simulator) == dict.fromkeys(waiting_prompts + sending_prompts, 1)
    new_log = new.log.read_text(errors="replace")
    assert "had lost their task message" not in new_log  # nothing needed the sweep (and beat was not running)
    # The old worker sent every create; the new one followed the videos from there.
    assert "Runway POST" not in new_log
    assert re.search(r"Runway GET /v1/tasks/\S+ -> 200", new_log), new.tail()


def test_jobs_in_flight_survive_a_broker_outage_with_the_same_worker_and_beat(user, broker_outage, settings):
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 100
    stack = Stack(broker_outage.broker)
    try:
        simulator = stack.start(task_seconds=10.0)
        # Its polls wait in the broker (as a prefork worker's do), so that the outage takes them:
        # a worker's poller would keep them through it (tests/test_recovery.py kills one).
        worker = stack.worker(WORKER_POLL_THREADS="0")
        beat = stack.beat()
        prompts = [f"Scene {i} before the outage" for i in range(8)]
        ids = create_jobs(user, stack, prompts)
        wait_for_jobs(stack, ids, made_and_waiting, seconds=30)
        # Two more whose creates are out when the broker goes: their next step is sent into the outage.
        simulator.set_network(latency=30.0)
        late_prompts = [f"Scene {i} during the outage" for i in range(2)]
        ids += create_jobs(user, stack, late_prompts)
        wait_until(lambda: simulator.creates == 10, seconds=30, stack=stack, what="the last two creates")
        stack.clock.wait_for_waiters(2, timeout=30)
        # Beat has sent a sweep through the broker (one at a time: the second starts after the first).
        wait_until(
            lambda: beat.log.read_text().count("Sending due task sweep") >= 2,
            seconds=10,
            stack=stack,
            what="two sweeps",
        )
        pids = (worker.pid, beat.pid)

        broker_outage.begin()  # Redis: SIGKILL, every message gone, the held countdowns too
        # The creates are answered (the videos made) while the broker is away, before Runway's read
        # timeout ends them, however long the worker takes to notice the broker gone (on a loaded
        # machine it once took over 30 s).
        stack.clock.advance(30.0)
        simulator.set_network(latency=0.0)
        worker.wait_for_log(r"Connection to broker lost", seconds=90)
        beat.wait_for_log(r"Couldn't apply scheduled task|beat: Connection error", seconds=30)
        broker_outage.end()  # Redis: the same port, empty
        jobs = wait_for_jobs(stack, ids, lambda job: job.is_final, seconds=90)

        assert [job.status for job in jobs] == [Status.SUCCEEDED] * 10, [(job.pk, job.message) for job in jobs]
        assert simulator.creates == 10
        assert creates_per_prompt(simulator) == dict.fromkeys(prompts + late_prompts, 1)
        assert (worker.pid, beat.pid) == pids and worker.running() and beat.running(), stack.logs()
        log = worker.log.read_text(errors="replace")
        # The two whose next step was sent into the outage were put back by the sweep.
        assert "had lost their task message" in log, worker.tail()
        # One reconnection, and a sound one (see CELERY_WORKER_ENABLE_PREFETCH_COUNT_REDUCTION).
        assert log.count("Connection to broker lost") == 1 and "UnexpectedFrame" not in log, worker.tail()
    finally:
        if broker_outage.away:
            broker_outage.end()  # so that stopping the worker can clear its queue
        stack.stop()


@pytest.mark.parametrize("broker_name", BROKERS)
def test_jobs_in_flight_survive_a_failover_that_strands_every_broker_connection(user, settings, broker_name):
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 100
    with behind_a_proxy(broker_name) as (broker, proxy):
        stack = Stack(broker)
        try:
            simulator = stack.start(task_seconds=10.0)
            worker = stack.worker()
            beat = stack.beat()
            prompts = [f"Scene {i} before the failover" for i in range(8)]
            ids = create_jobs(user, stack, prompts)
            wait_for_jobs(stack, ids, made_and_waiting, seconds=30)
            pids = (worker.pid, beat.pid)

            stranded = proxy.strand()
            failed_over = time.monotonic()
            # The web tier's pooled connections are stranded too: these wait for the sweep.
            late_prompts = [f"Scene {i} after the failover" for i in range(2)]
            ids += create_jobs(user, stack, late_prompts)
            # Moving again: a message went through the broker (the sweep's, for a late job) and its
            # step ran (the worker's held polls go on without the broker).
            wait_until(lambda: simulator.creates > 8, seconds=90, stack=stack, what="a late job's create")
            moving_again = time.monotonic() - failed_over
            wait_until(lambda: simulator.creates == 10, seconds=30, stack=stack, what="the late jobs' creates")
            stack.clock.advance(10.0)  # every video is made
            jobs = wait_for_jobs(stack, ids, lambda job: job.is_final, seconds=120 - moving_again)

            assert stranded >= 2, stranded  # the worker's and beat's connections, at least
            assert [job.status for job in jobs] == [Status.SUCCEEDED] * 10, [(job.pk, job.message) for job in jobs]
            assert creates_per_prompt(simulator) == dict.fromkeys(prompts + late_prompts, 1)
            assert (worker.pid, beat.pid) == pids and worker.running() and beat.running(), stack.logs()
            # Found out by the broker checks (settings: CELERY_BROKER_HEARTBEAT, 10 s), not by luck.
            assert moving_again < 60, f"{moving_again:.0f} s\n{worker.tail()}"
        finally:
            stack.stop()


@pytest.mark.parametrize("broker_name", BROKERS)
def test_the_heartbeat_says_when_a_worker_takes_nothing_and_when_it_takes_again(user, settings, tmp_path, broker_name):
    settings.WORKER_HEARTBEAT_FILE = str(tmp_path / "heartbeat")
    settings.WORKER_STALE_AFTER = 20
    with behind_a_proxy(broker_name) as (broker, proxy):
        stack = Stack(broker)
        try:
            stack.start(task_seconds=10.0)
            stack.worker(WORKER_HEARTBEAT_FILE=settings.WORKER_HEARTBEAT_FILE)
            wait_until(worker_alive, seconds=30, stack=stack, what="a first heartbeat")

            proxy.freeze()  # the broker hangs: connections open, nothing answered, new ones too
            wait_until(lambda: not worker_alive(), seconds=60, stack=stack, what="a stale heartbeat")
            proxy.restore()

            wait_until(worker_alive, seconds=60, stack=stack, what="a fresh heartbeat")
        finally:
            proxy.restore()
            stack.stop()


def worker_alive() -> bool:
    """What `manage.py health --worker` says, as a supervisor reads it: its exit code."""
    try:
        call_command("health", "--worker", stdout=io.StringIO())
    except SystemExit as exit_:
        assert exit_.code == 1
        return False
    return True
