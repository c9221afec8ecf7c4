"""``fastseg dashboard``: a Streamlit app over aggregates of the segments, computed once."""

import click

from . import options as o

MAX_SAMPLE = 200_000  # every sampled row goes to the browser: ~20 MB, well under 200 MB


def sample_size(text):
    return o.whole_number(text, 1, MAX_SAMPLE)


@o.command(
    "dashboard",
    short_help="browse the segments in a local web app (Streamlit)",
    help="Compute, once, what a web page needs to show the segments MODEL finds in DATA (the "
    "profile, z-scores, key metrics by segment, a uniform sample of --sample rows; with "
    "--reference, the drift from that earlier period to DATA), then serve it with Streamlit "
    "until Ctrl-C: segment sizes and shares, the profile table with readable labels, the "
    "z-score heat map, a scatter of the sample, filters by segment and by feature ranges, key "
    "metrics by segment and the drift. The browser gets these aggregates, never all the rows. "
    "Headless, on loopback unless --host says otherwise; prints the address to open. Needs "
    "the dashboard extra: pip install 'fastseg[dashboard]'.",
    example="fastseg dashboard model.json customers_q2.parquet "
    "--reference customers_q1.parquet --port 8501",
)
@o.inputs(model=True)
@click.option(
    "--reference",
    multiple=True,
    metavar="OLD",
    help="data of an earlier period (file, glob or folder; repeat for several): DATA is the "
    "new one, and a drift section compares them, e.g. customers_q1.parquet",
)
@o.listening(
    8501,
    "anything but loopback shows the segment data to the network, and there is no login, "
    "e.g. 0.0.0.0",
)
@click.option(
    "--sample",
    type=o.Parsed(sample_size),
    default=5000,
    metavar="N",
    help=f"rows of the uniform sample the scatter and the filters use, all sent to the "
    f"browser (default 5000, at most {MAX_SAMPLE}), e.g. 20000",
)
@o.seed("random seed of the samples (default 0), e.g. 7")
@o.quiet("no progress bar or notes on stderr while the aggregates are computed")
def dashboard(model, data, reference, host, port, sample, seed, say):
    import shutil
    import signal
    import sys
    import tempfile

    from .. import interrupts
    from ..cluster.modelfile import load_engine
    from ..dashboard import server
    from ..dashboard.aggregates import compute_aggregates, save_aggregates

    server.check_installed()
    engine = load_engine(model)
    if not server.is_loopback(host):  # said even with --quiet
        print(
            f"fastseg: warning: --host {host} is not loopback: anyone who can reach this "
            f"machine on port {port} sees the segment data (there is no login)",
            file=sys.stderr,
        )
    server.check_port(host, port)
    old = None if not reference else (reference[0] if len(reference) == 1 else list(reference))
    folder = tempfile.mkdtemp(prefix="fastseg-dashboard-")
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        agg = compute_aggregates(engine, data, old, sample_rows=sample, seed=seed)
        with interrupts.preliminary():  # not the last work: Ctrl-C still stops the server
            save_aggregates(agg, folder)
        _serve(server, folder, host, port, say)
    except _Stopped:  # (a SIGTERM; or Ctrl-C while serving: the normal way to stop it)
        say("fastseg dashboard: stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(folder, ignore_errors=True)


class _Stopped(BaseException):
    """SIGTERM, or Ctrl-C once the dashboard is up: stop it and end normally."""


def _stop(signum, frame):
    raise _Stopped


def _serve(server, folder, host, port, say):
    """Run the server until it is stopped; an error if it ends on its own."""
    import signal

    child = server.start(folder, host, port)
    previous = signal.signal(signal.SIGINT, _stop)
    try:
        print(f"fastseg dashboard: {server.url(host, port)}", flush=True)
        say("fastseg dashboard: press Ctrl-C to stop it")
        code = child.wait()
    finally:
        server.stop(child)
        signal.signal(signal.SIGINT, previous)
    from ..errors import FastsegError

    raise FastsegError(f"the dashboard's server stopped on its own (exit status {code})")
