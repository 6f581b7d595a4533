"""The activity audit log viewer: a query API (and, later, a page) that shows an account's
log only to its owner, its Admins and holders of the activity-audit privilege."""
