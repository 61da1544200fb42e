"""/whoami sees the user forwarded in the underscore header X_User_Id."""


def check(server):
    with server.client() as session:
        r = session.get(server.url + "whoami", headers={"X_User_Id": "alice"}, timeout=2)
    if r.status_code == 200 and r.text == "alice":
        return "pass", "X_User_Id reached the app"
    return "fail", f"HTTP {r.status_code} {r.text!r}: X_User_Id did not reach the app"
