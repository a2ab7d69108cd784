"""PySide6 6.12.0 on CPython 3.11 leaks a reference to None per Python paint override and aborts
after ~5,000 repaints ("Fatal Python error: none_dealloc"). Repaint 20,000 times in a subprocess."""

import subprocess
import sys

CODE = """
import os
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication([])
class Painted(QWidget):
    count = 0
    def paintEvent(self, event):
        Painted.count += 1
        QPainter(self).drawLine(0, 0, 10, 10)
w = Painted(); w.resize(40, 40); w.show()
for _ in range(20000):
    w.grab()  # renders through paintEvent even offscreen, where repaint() may paint nothing
print(Painted.count)
"""


def test_twenty_thousand_python_repaints_do_not_abort():
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) >= 20000
