"""`make lab` works: JupyterLab from the course's venv starts, serves its page, lists the venv's
kernel under the name the notebooks ask for, and starts it."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_KERNEL = "python3"  # the kernelspec name in every course notebook's metadata


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    jupyter = Path(sys.executable).with_name("jupyter")
    assert jupyter.is_file(), f"no {jupyter}: JupyterLab is pinned in requirements.txt (make env)"
    port, token = _free_port(), secrets.token_hex(16)
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    process = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={REPO}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],  # as `make lab` does
        env=dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"

    def call(path, method="GET"):
        request = urllib.request.Request(f"{base}{path}", method=method,
                                         headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return response.status, (json.loads(body) if body and "json" in response.headers.get(
                "Content-Type", "") else body.decode())

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                call("/api/status")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    pytest.fail(f"JupyterLab did not answer on port {port}:\n{process.communicate()[0]}")
                time.sleep(0.5)
        yield call, base, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_lab_serves_its_page(lab):
    call, _, _ = lab
    status, page = call("/lab")
    assert status == 200 and "JupyterLab" in page


def _run_over_websocket(port_url: str, token: str, kernel_id: str, code: str) -> str:
    """Execute code in a kernel through the server's websocket, as JupyterLab does; return its stdout."""
    import uuid

    import websocket  # websocket-client, a JupyterLab dependency

    socket_ = websocket.create_connection(
        f"{port_url.replace('http', 'ws', 1)}/api/kernels/{kernel_id}/channels",
        header=[f"Authorization: token {token}"], timeout=120)
    try:
        msg_id = uuid.uuid4().hex
        socket_.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False}}))
        # The reply comes on the shell channel and the output on iopub, in no fixed order between
        # them; the output is complete when iopub reports the kernel idle after this request.
        printed, replied, idle = [], False, False
        while not (replied and idle):
            message = json.loads(socket_.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "stream":
                printed.append(message["content"]["text"])
            elif message["msg_type"] == "execute_reply":
                assert message["content"]["status"] == "ok", message["content"]
                replied = True
            elif message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                idle = True
        return "".join(printed)
    finally:
        socket_.close()


def test_the_notebooks_kernel_starts_on_the_venvs_python(lab):
    call, base, token = lab
    _, specs = call("/api/kernelspecs")
    assert NOTEBOOK_KERNEL in specs["kernelspecs"], f"no {NOTEBOOK_KERNEL} kernel: {list(specs['kernelspecs'])}"
    _, kernel = call(f"/api/kernels?name={NOTEBOOK_KERNEL}", method="POST")
    try:
        executable = _run_over_websocket(base, token, kernel["id"], "import sys; print(sys.executable, end='')")
    finally:
        call(f"/api/kernels/{kernel['id']}", method="DELETE")
    assert Path(executable).resolve() == Path(sys.executable).resolve()
