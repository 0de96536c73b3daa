"""Screenshots of a visitor's page: rendered by the screenshot worker, cached in Redis (role 5).

``urls`` normalises and checks the URL, ``guard`` decides which addresses a render may reach,
``services`` is the write side (requests, the single-flight render, results), ``renderer`` and
``proxy`` run in the screenshot worker only (Playwright and Chromium are never imported by web).
"""
