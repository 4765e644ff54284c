#!/usr/bin/env python3
"""Scores Patchbay's audio paths with PESQ (ITU-T P.862, PyPI `pesq`) on the speech fixtures.

Each path runs through the real `patchbay transcode` binary (release build), so what is scored is what ships:
  - mu-law round trip, 8 kHz (narrow band):      wav 8k -> .ulaw -> wav 8k
  - resample round trip + mu-law (narrow band):  wav 8k -> wav 16k -> .ulaw (8k) -> wav 8k
  - Opus 16 kHz at 24 kbit/s (wide band):         wav 16k -> .ogg -> wav 16k
Usage: python3 Benchmarks/quality/pesq_report.py   (needs: pip install pesq numpy; `swift build -c release`)
"""
import os, subprocess, sys, tempfile, wave
import numpy as np
from pesq import pesq

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
binary = os.path.join(root, ".build", "release", "patchbay")
fixtures = os.path.join(root, "fixtures", "speech")

def read(path):
    with wave.open(path) as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)

def transcode(src, dst, *args):
    subprocess.run([binary, "transcode", src, dst, *args], check=True, stdout=subprocess.DEVNULL)

def score(ref_path, deg_path, mode):
    rate, ref = read(ref_path)
    _, deg = read(deg_path)
    n = min(len(ref), len(deg))
    return pesq(rate, ref[:n], deg[:n], mode)

rows = []
with tempfile.TemporaryDirectory() as tmp:
    p = lambda name: os.path.join(tmp, name)
    for lang in ("es", "en"):
        nb = os.path.join(fixtures, f"{lang}_8000.wav")
        wb = os.path.join(fixtures, f"{lang}_16000.wav")
        transcode(nb, p("a.ulaw")); transcode(p("a.ulaw"), p("a.wav"))
        rows.append((lang, "mu-law round trip 8 kHz", "nb", score(nb, p("a.wav"), "nb")))
        transcode(nb, p("b16.wav"), "--rate", "16000"); transcode(p("b16.wav"), p("b.ulaw")); transcode(p("b.ulaw"), p("b.wav"))
        rows.append((lang, "8 -> 16 kHz -> mu-law 8 kHz", "nb", score(nb, p("b.wav"), "nb")))
        transcode(wb, p("c.ogg"), "--rate", "16000", "--bitrate", "24000"); transcode(p("c.ogg"), p("c.wav"), "--rate", "16000")
        rows.append((lang, "Opus 16 kHz 24 kbit/s", "wb", score(wb, p("c.wav"), "wb")))

print("| fixture | path | band | PESQ MOS-LQO |")
print("|---|---|---|---:|")
for lang, path, band, mos in rows:
    print(f"| {lang} | {path} | {band} | {mos:.2f} |")
