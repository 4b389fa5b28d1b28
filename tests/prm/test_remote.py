"""``RemotePRM`` against real HTTP servers on localhost: the project's PRM server, and a deliberately
misbehaving server (errors, slow replies, malformed JSON) to exercise retries, timeouts and row masking."""

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from prm.arith import ArithPRM
from prm.remote import RemotePRM, make_server
from pure_rl.core.registry import PRMS

PROMPTS = ["Compute 3 + 4 - 1.\n\n", "Compute 5 - 2.\n\n", "Compute 1 + 1.\n\n"]
STEPS = [["3 + 4 = 7", "7 - 1 = 6", "\\boxed{6}"], ["5 - 2 = 4", "\\boxed{4}"], ["1 + 1 = 2", "\\boxed{2}"]]


def serve(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_port}/"


@pytest.fixture
def arith_server():
    server = make_server(ArithPRM())
    yield serve(server)
    server.shutdown()
    server.server_close()


class Misbehaving(BaseHTTPRequestHandler):
    """Follows ``self.server.plan``: a list of actions consumed one per request (the last one repeats)."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        plan = self.server.plan
        action = plan.pop(0) if len(plan) > 1 else plan[0]
        if action == "slow":
            time.sleep(1.0)
            action = "ok"
        if action.startswith("http"):
            self.send_response(int(action[4:]))
            self.end_headers()
            return
        if action == "garbage":
            data = b"not json"
        elif action == "wrong_rows":
            data = json.dumps({"scores": [[0.5]]}).encode()
        elif action == "bad_row":
            scores = ArithPRM().score_steps(body["prompts"], body["steps"])
            scores[0] = scores[0][:-1]  # one score short
            data = json.dumps({"scores": scores}).encode()
        else:
            data = json.dumps({"scores": ArithPRM().score_steps(body["prompts"], body["steps"])}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def misbehaving():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    server.plan, server.requests = ["ok"], []
    url = serve(server)
    yield server, url
    server.shutdown()
    server.server_close()


def test_remote_scores_equal_local_scores_across_batches(arith_server):
    prm = PRMS.build("remote", url=arith_server, batch_size=2, max_concurrency=2)
    assert prm.score_steps(PROMPTS, STEPS) == ArithPRM().score_steps(PROMPTS, STEPS)
    assert prm.score_steps(PROMPTS, STEPS) == [[1.0, 1.0, 1.0], [-1.0, 1.0], [1.0, 1.0]]


def test_server_rejects_a_bad_request_with_400(arith_server):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(arith_server, data=b'{"prompts": ["x"]}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400 and b"expected" in err.value.read()


def test_transient_5xx_is_retried(misbehaving):
    server, url = misbehaving
    server.plan = ["http503", "http500", "ok"]
    prm = RemotePRM(url, retries=2, backoff=0.01)
    assert prm.score_steps(PROMPTS, STEPS) == ArithPRM().score_steps(PROMPTS, STEPS)
    assert len(server.requests) == 3


def test_persistent_failure_leaves_rows_unscored_not_zero(misbehaving):
    server, url = misbehaving
    server.plan = ["http500"]
    prm = RemotePRM(url, retries=1, backoff=0.01, batch_size=2)
    assert prm.score_steps(PROMPTS, STEPS) == [None, None, None]
    assert len(server.requests) == 4  # 2 batches x (1 try + 1 retry)


def test_4xx_is_not_retried(misbehaving):
    server, url = misbehaving
    server.plan = ["http404"]
    assert RemotePRM(url, retries=3, backoff=0.01).score_steps(PROMPTS, STEPS) == [None] * 3
    assert len(server.requests) == 1


def test_timeout_is_bounded_and_only_the_slow_batch_is_lost(misbehaving):
    server, url = misbehaving
    server.plan = ["slow", "ok"]
    prm = RemotePRM(url, timeout=0.3, retries=0, batch_size=2, max_concurrency=1)
    t0 = time.perf_counter()
    scores = prm.score_steps(PROMPTS, STEPS)
    assert time.perf_counter() - t0 < 1.0
    assert scores == [None, None, [1.0, 1.0]]


@pytest.mark.parametrize("action, expected", [
    ("garbage", [None, None, None]),
    ("wrong_rows", [None, None, None]),
    ("bad_row", [None, [-1.0, 1.0], [1.0, 1.0]]),
])
def test_malformed_replies_mask_only_what_is_malformed(misbehaving, action, expected):
    server, url = misbehaving
    server.plan = [action]
    assert RemotePRM(url, retries=0).score_steps(PROMPTS, STEPS) == expected


def test_unreachable_server_gives_none_rows():
    prm = RemotePRM("http://127.0.0.1:9/", timeout=0.5, retries=1, backoff=0.01)
    assert prm.score_steps(PROMPTS[:1], STEPS[:1]) == [None]


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="must start with http"):
        RemotePRM("localhost:8000")
    with pytest.raises(ValueError, match="score_range"):
        RemotePRM("http://x", score_range=[1, 0])
    with pytest.raises(ValueError, match="timeout=0"):
        RemotePRM("http://x", timeout=0)


def test_cli_serves_a_registered_prm(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "prm.remote", "--prm", "arith", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        prm = RemotePRM(f"http://127.0.0.1:{port}/", timeout=2, retries=20, backoff=0.1)
        assert prm.score_steps(PROMPTS, STEPS) == ArithPRM().score_steps(PROMPTS, STEPS)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
