"""Update an output in place, at the cost of one message.

IPython's `DisplayHandle.update` goes through ipykernel's display publisher,
which first flushes stdout and stderr (a round trip to the IOPub thread,
1 to 2 ms on a small machine) and keeps every update in the shell's output
history. The live panel updates its outputs several times a second, so it
sends the same `update_display_data` message itself, on the kernel's IOPub
socket, parented to the cell executing when it is sent: in the foreground
the cell that showed the output; for a background run whichever cell runs
meanwhile, as IPython's own display updates are (Jupyter frontends and
nbclient apply an update to the output with its display id, in any cell;
nbclient listens only to the executing cell). Where the shell is not
ipykernel's (or a hook captures display messages, as ipywidgets' `Output`
does), it falls back to IPython's own path. `tests/test_fit_notebook.py`
checks the messages a real kernel sends; `tests/test_fit_callback.py`
fails loudly if ipykernel renames what this module reads.
"""

from __future__ import annotations

from typing import Dict


class OutputUpdater:
    """Sends `update_display_data` for one display id.

    Args:
        handle: the `DisplayHandle` returned by `display(obj, display_id=True)`.
        shell: the IPython shell (None: IPython's current one).
    """

    def __init__(self, handle, shell=None):
        self.handle = handle
        if shell is None:
            from IPython import get_ipython
            shell = get_ipython()
        pub = getattr(shell, "display_pub", None)
        self._pub = pub if _direct(pub) else None

    def update(self, bundle: Dict[str, str]) -> None:
        """Replace the output's data with the mime `bundle` ({'text/html': ...})."""
        pub = self._pub
        if pub is None or getattr(pub, "_hooks", None):
            self.handle.update(bundle, raw=True)
            return
        content = {"data": bundle, "metadata": {},
                   "transient": {"display_id": self.handle.display_id}}
        # ipykernel's parent header: this thread's (the cell it runs), else the latest cell's
        msg = pub.session.msg("update_display_data", content, parent=pub.parent_header)
        pub.session.send(pub.pub_socket, msg, ident=pub.topic)


def _direct(pub) -> bool:
    """Whether `pub` is ipykernel's publisher, with what a direct send needs."""
    return all(getattr(pub, name, None) is not None
               for name in ("session", "pub_socket", "topic", "parent_header"))
