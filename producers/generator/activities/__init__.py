"""Activity handlers, by domain: each a function ``(Ctx) -> Event | None``.

See :mod:`producers.generator.context` for the contract; :mod:`producers.generator.menus`
weighs them per role.
"""
