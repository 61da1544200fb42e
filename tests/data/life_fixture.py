"""Every server-life method of the fixture, once each, on a real gunicorn."""

import signal

APP = """
def app(environ, start_response):
    body = b'Hello World'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"""
SETTINGS = {"workers": 2}
TIMEOUT = 45  # more than the default --timeout 20: the file's own floor
TRACKER = 1


def check(server):
    facts = {"timeout": server.remaining() > 25}
    gen = server.reload()
    facts["reload"] = gen.ok and len(gen.new) == 2 and not set(gen.old) & set(gen.new)
    gone = server.kill_worker(signal.SIGKILL)
    facts["kill_worker"] = gone.reaped and bool(gone.replaced_by) and gone.zombies == 0
    now = server.counts()
    facts["counts"] = (
        now is not None and now.children == 2 and now.zombies == 0 and now.fds > 0
    )
    with server.load(clients=2) as load:
        server.settle(0.5)
    facts["load"] = load.result.ok > 0 and load.result.failures == 0
    reply = server.exchange(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    facts["exchange"] = reply.status == 200 and reply.body == b"Hello World"
    facts["one_connection"] = server.one_connection(["/"]) == ["HTTP 200"]  # sync: no keep-alive
    facts["app_file"] = server.app_file.read_text() == APP
    server.edit_app(APP.replace("Hello World", "Hello again"))
    facts["edit_app"] = "Hello again" in server.app_file.read_text()
    facts["log_lines"] = bool(server.log_lines(r"Booting worker", level="INFO"))
    bad = [k for k, ok in facts.items() if not ok]
    if bad:
        return "fail", "not as documented: " + ", ".join(bad)
    return "pass", "as documented: " + ", ".join(facts)
