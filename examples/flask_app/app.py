"""A small Flask app with no ``/`` route: ``/whoami`` reads the user a proxy forwards in
``X_User_Id`` (a header name with an underscore, which gunicorn 22.0.0 drops)."""

from flask import Flask, request

app = Flask(__name__)


@app.route("/whoami")
def whoami():
    user = request.headers.get("X-User-Id")
    return (user, 200) if user else ("nobody", 403)


def create_app():
    """The same app through an application factory (``--app 'app:create_app()'``)."""
    return app
