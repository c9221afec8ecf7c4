"""``fastseg serve``: assign customers to segments over HTTP (Starlette + uvicorn)."""

import click

from . import options as o

TOKEN_VARIABLE = "FASTSEG_TOKEN"
EXTRAS = ("starlette", "uvicorn", "msgspec")


def body_size(text):
    """A body limit from '10MB', '512KB', '100000' (binary units)."""
    try:
        return o.parse_size(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a size above 0; write e.g. 10MB or 512KB") from None


@o.command(
    "serve",
    short_help="assign customers to segments over HTTP",
    help="Serve MODEL over HTTP until Ctrl-C: POST /segment with one customer (a JSON object "
    "of the fields the model reads) or an array of them answers each one's segment, distance, "
    "runner-up, margin and an explanation; GET /model lists the fields and the segments with "
    "their labels; GET /healthz answers while the server runs. The model file is watched: a "
    "new file is swapped in whole, a broken one is reported and the old model keeps serving. "
    "On loopback unless --host says otherwise; any other address needs a token (--token or "
    f"{TOKEN_VARIABLE}), which /segment and /model then require as 'Authorization: Bearer "
    "<token>'. Needs the serve extra: pip install 'fastseg[serve]'.",
    example="FASTSEG_TOKEN=s3cret fastseg serve model.json --host 0.0.0.0 --port 8000",
)
@click.argument(
    "model", cls=o.Argument, help="model file written by 'fastseg fit --model', e.g. model.json"
)
@o.listening(8000, "any other needs a token or --no-auth, e.g. 0.0.0.0")
@click.option(
    "--token",
    envvar=TOKEN_VARIABLE,
    metavar="TOKEN",
    help=f"secret clients send as 'Authorization: Bearer TOKEN' (default: ${TOKEN_VARIABLE}, "
    "which other users of this machine cannot read in the process list, unlike this option)",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="serve any address without a token: anyone who reaches it can assign customers "
    "and read the segments",
)
@click.option(
    "--max-body",
    type=o.Parsed(body_size),
    default="10MB",
    metavar="SIZE",
    help="largest request body (default 10MB, about 40,000 customers); a larger one gets 413, "
    "e.g. 1MB",
)
def serve(model, host, port, token, no_auth, max_body):
    import sys

    token = (token or "").strip() or None  # (an empty FASTSEG_TOKEN is none)
    check_access(host, token, no_auth)
    check_installed()
    from ..serve.app import create_app
    from ..serve.listen import bind, is_loopback, run, url

    app = create_app(model, token=token, max_body=max_body)
    sock = bind(host, port)
    served = app.state.holder.current
    print(f"fastseg serve: {url(host, port)} (model: {model}, {served.k} segments)", flush=True)
    if no_auth:
        where = "this machine" if is_loopback(host) else "the network"
        print(
            f"fastseg serve: WARNING: no authentication: anyone on {where} who reaches "
            f"{url(host, port)} can assign customers and read the segments",
            file=sys.stderr,
            flush=True,
        )
    run(app, sock)
    print("fastseg serve: stopped", file=sys.stderr, flush=True)


def check_access(host, token, no_auth):
    """A token is required off loopback, unless --no-auth says to go without (one or the
    other: both would leave it unclear whether the token is checked)."""
    from ..serve.listen import is_loopback

    if no_auth and token is not None:
        raise click.UsageError(
            f"--no-auth and a token (--token or {TOKEN_VARIABLE}) contradict each other: "
            "give one of them"
        )
    if not is_loopback(host) and token is None and not no_auth:
        raise click.UsageError(
            f"--host {host} is not loopback: give a token clients must send, with --token or "
            f"{TOKEN_VARIABLE}, or serve without one with --no-auth"
        )


def check_installed():
    """A one-line error naming the extra when a package of the server is missing."""
    import importlib.util

    from ..errors import FastsegError

    missing = [m for m in EXTRAS if importlib.util.find_spec(m) is None]
    if missing:
        raise FastsegError(
            f"fastseg serve needs {', '.join(missing)}: pip install 'fastseg[serve]'"
        )
