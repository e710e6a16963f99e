"""A minimal client of the Blockshot daemon's control socket (newline-delimited JSON-RPC 2.0)."""

import json
import socket
import time


class ControlError(Exception):
    def __init__(self, method, error):
        super().__init__(f"{method}: {error.get('message')} (code {error.get('code')})")
        self.code = error.get("code")


class Control:
    """One connection; call() sends a request and returns its result (raising ControlError)."""

    def __init__(self, path, timeout=60.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")
        self.next_id = 0

    def call(self, method, params=None):
        self.next_id += 1
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            request["params"] = params
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError("the daemon closed the control connection")
            reply = json.loads(line)
            if reply.get("id") != self.next_id:
                continue    # an event notification or a stale reply
            if "error" in reply:
                raise ControlError(method, reply["error"])
            return reply.get("result")

    def timed_call(self, method, params=None):
        """(result, milliseconds) for one round trip."""
        start = time.perf_counter()
        result = self.call(method, params)
        return result, (time.perf_counter() - start) * 1000.0

    def close(self):
        try:
            self.reader.close()
        finally:
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
