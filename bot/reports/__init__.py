"""Reports for the business's supervisors, computed from the store and rendered elsewhere.

`satisfaction` computes the monthly satisfaction report (figures as plain dataclasses),
`exports` turns it into JSON and CSV, `chart` draws its twelve-month trend as a PNG; the
terminal rendering lives with the command line (`bot/cli/report.py`).
"""
