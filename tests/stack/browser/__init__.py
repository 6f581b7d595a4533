"""Browser tests of the viewer page (docs/viewer-page.md): Debian's headless Chromium driven
by Selenium against ``auditlog serve`` on the real stack."""
