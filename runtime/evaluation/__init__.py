"""Evaluation: quality judges and metrics, ``eval`` (quality of one render), ``bench`` (speed against
the decode → track → encode floor), the motion sweep and the RESULTS page.

Kept apart from the runtime so that the product's import graph never pulls in dlib or the judges.
"""
