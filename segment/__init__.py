"""segment: cut every harvested source into sample-exact 16 kHz mono windows.

Each source is decoded once by ffmpeg into a pipe and cut on the fly
(``decode`` -> ``stream`` -> ``writer``), so memory stays bounded by about one
window whatever the source's length; ``run`` drives the sources through the
journal, two at a time.
"""
