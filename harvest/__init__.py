"""harvest: collect long-form audio sources into a workspace.

Online sources go through yt-dlp (as a library) with a Creative Commons
licence gate; local files and folders are taken as user-provided. Every
finished source is a ``SourceRecord`` in ``sources/<id>.json`` plus one DONE
line in the run journal, so reruns skip it and later stages find it.
"""

from harvest.options import HarvestOptions
from harvest.runner import harvest

__all__ = ["HarvestOptions", "harvest"]
