"""A whole class at once: machine reports (from `verify`, `onboard`, `info`) read, merged into one
row per machine, and written as a terminal table, JSON, CSV or a self-contained HTML page.

Only the standard library is used here, so `cnnsetup report` starts and finishes quickly even
over a thousand files.
"""
