"""Reports a colleague can open: one self-contained HTML file per run or study (``report.py``)."""
