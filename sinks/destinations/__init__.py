"""Customer destinations: what they are (``model``), where they are kept (``store``), and
how their secrets are protected (``secrets``)."""
