"""Operations: batch scoring (canary, shadow), live metrics, drift monitoring against the champion and
retraining without storms."""

from __future__ import annotations
