"""Word pools for synthetic names, apps, errors and clients. Data only, no randomness."""

from __future__ import annotations

FIRST_NAMES = (
    "Aisha", "Alejandro", "Amelia", "Ana", "Arjun", "Ben", "Carlos", "Chen", "Chloe", "Daniel",
    "David", "Elena", "Emily", "Emma", "Fatima", "Felix", "Grace", "Hannah", "Hiroshi", "Ines",
    "Isabel", "Ivan", "Jack", "James", "Jana", "Jing", "Jonas", "Julia", "Kenji", "Laura",
    "Leila", "Liam", "Lucas", "Maria", "Mateo", "Maya", "Mei", "Michael", "Mohammed", "Nadia",
    "Noah", "Nora", "Olivia", "Omar", "Pablo", "Priya", "Rahul", "Rosa", "Samuel", "Sara",
    "Sofia", "Sophie", "Thomas", "Tomas", "Wei", "Yuki", "Zara", "Oliver", "Anna", "Ravi",
)  # fmt: skip

LAST_NAMES = (
    "Adams", "Ahmed", "Alvarez", "Andersen", "Bauer", "Becker", "Brown", "Chen", "Clarke",
    "Costa", "Dubois", "Fischer", "Garcia", "Gupta", "Hansen", "Hernandez", "Ito", "Jansen",
    "Johnson", "Kim", "Kowalski", "Kumar", "Larsen", "Lee", "Lopez", "Martin", "Meyer",
    "Moreau", "Muller", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Patel", "Perez",
    "Rossi", "Santos", "Sato", "Schmidt", "Shah", "Silva", "Singh", "Smith", "Suzuki",
    "Tanaka", "Taylor", "Thompson", "Wagner", "Walker", "Wang", "Weber", "Williams", "Wilson",
    "Wong", "Yamamoto", "Young", "Zhang", "Ivanova", "Rahman",
)  # fmt: skip

COMPANY_WORDS = (
    "Acme", "Apex", "Aurora", "Beacon", "Blue Harbor", "Brightline", "Cascade", "Cedar",
    "Copperleaf", "Crescent", "Evergreen", "Falcon", "Granite", "Harbor", "Helix", "Horizon",
    "Ironwood", "Juniper", "Keystone", "Lakeside", "Meridian", "Northwind", "Oakridge",
    "Orbit", "Pinnacle", "Quantum", "Redwood", "Riverstone", "Sapphire", "Silverline",
    "Summit", "Tidewater", "Trident", "Vertex", "Willow", "Zephyr", "Polaris", "Sterling",
)  # fmt: skip

COMPANY_KINDS = (
    "Logistics", "Health", "Labs", "Foods", "Bank", "Retail", "Energy", "Insurance", "Media",
    "Systems", "Software", "Motors", "Pharma", "Telecom", "Travel", "Capital", "Analytics",
)  # fmt: skip

DOMAIN_SUFFIXES = (".com", ".com", ".com", ".com", ".io", ".co.uk", ".de", ".fr", ".nl", ".com.au")

TEAMS = (
    "Finance Ops", "Sales Automation", "People Ops", "IT Automation", "Data Platform",
    "Marketing Ops", "Customer Success", "RevOps", "Supply Chain", "Security Ops",
)  # fmt: skip

ENVIRONMENT_TITLES = {"dev": "Development", "test": "Test", "prod": "Production"}

APPS = (
    ("salesforce", "Salesforce"), ("netsuite", "NetSuite"), ("slack", "Slack"),
    ("workday", "Workday"), ("servicenow", "ServiceNow"), ("jira", "Jira"),
    ("zendesk", "Zendesk"), ("hubspot", "HubSpot"), ("snowflake", "Snowflake"),
    ("google_sheets", "Google Sheets"), ("sap_s4hana", "SAP S/4HANA"), ("marketo", "Marketo"),
    ("box", "Box"), ("okta", "Okta"), ("shopify", "Shopify"), ("stripe", "Stripe"),
    ("quickbooks", "QuickBooks"), ("postgresql", "PostgreSQL"), ("amazon_s3", "Amazon S3"),
    ("microsoft_teams", "Microsoft Teams"), ("gmail", "Gmail"), ("bamboohr", "BambooHR"),
    ("greenhouse", "Greenhouse"), ("coupa", "Coupa"), ("docusign", "DocuSign"),
    ("github", "GitHub"), ("pagerduty", "PagerDuty"), ("databricks", "Databricks"),
)  # fmt: skip

BUSINESS_OBJECTS = (
    "accounts", "opportunities", "invoices", "orders", "employees", "tickets", "contacts",
    "leads", "purchase orders", "expense reports", "candidates", "shipments", "payments",
    "subscriptions", "incidents", "vendors", "contracts", "refunds",
)  # fmt: skip

RECIPE_TEMPLATES = (
    "Sync {obj} from {a} to {b}",
    "New {obj} in {a} to {b}",
    "Daily {obj} export from {a} to {b}",
    "Create {b} records for new {a} {obj}",
    "Notify {b} on {a} {obj} changes",
    "Nightly {obj} reconciliation {a} / {b}",
    "Archive closed {obj} from {a} to {b}",
)

FOLDER_NAMES = (
    "Finance", "Sales", "HR", "IT", "Support", "Marketing", "Shared", "Integrations",
    "Reporting", "Onboarding", "Billing", "Procurement", "Legal", "Archive", "Experiments",
)  # fmt: skip

PROJECT_NAMES = (
    "Order to Cash", "Procure to Pay", "Employee Lifecycle", "Lead to Opportunity",
    "Incident Management", "Customer Onboarding", "Month-end Close", "Data Warehouse Loads",
)  # fmt: skip

LOOKUP_TABLES = (
    "Country codes", "Cost centers", "Product SKUs", "Region owners", "Currency map",
    "Escalation matrix", "Department codes", "Price tiers",
)  # fmt: skip

TAGS = ("pii", "critical", "finance", "hr", "deprecated", "beta", "sox", "customer-facing")

ACCOUNT_PROPERTIES = (
    "SLACK_ALERT_CHANNEL", "ERP_BASE_URL", "DEFAULT_CURRENCY", "SUPPORT_EMAIL",
    "BATCH_SIZE", "FISCAL_YEAR_START", "SFTP_HOST", "RETRY_LIMIT",
)  # fmt: skip

ROLE_NAMES = ("Admin", "Developer", "Operator", "Analyst")
"""Built-in roles; members hold one of them (lowercase in ``User.role``)."""

CUSTOM_ROLE_NAMES = (
    "Recipe reviewer", "Finance builder", "Read-only auditor", "Connection manager",
    "Release manager", "Support operator",
)  # fmt: skip

PRIVILEGES = (
    "recipes.read", "recipes.write", "recipes.start_stop", "connections.read",
    "connections.write", "folders.write", "packages.export", "packages.import",
    "deployments.approve", "api_platform.manage", "lookup_tables.write", "audit_log.read",
)  # fmt: skip

API_CLIENT_NAMES = ("Partner portal", "Mobile app backend", "Data sync service", "BI tool")

API_COLLECTIONS = ("Orders API", "Customers API", "HR API", "Inventory API", "Billing API")

API_RESOURCES = ("orders", "customers", "employees", "items", "invoices", "tickets")

HTTP_METHODS = ("GET", "GET", "GET", "POST", "PUT", "PATCH", "DELETE")

CONNECTOR_NAMES = (
    "Legacy ERP", "Internal billing", "Warehouse scanner", "Partner portal", "Pricing engine",
    "Label printer", "Loyalty platform",
)  # fmt: skip

STREAM_DESTINATIONS = (
    ("s3", "S3 archive"), ("http", "Splunk HEC"), ("http", "Datadog logs"),
    ("azure_blob", "Azure Blob archive"), ("gcs", "GCS archive"), ("azure_monitor", "Sentinel"),
    ("http", "Sumo Logic collector"),
)  # fmt: skip

API_CLIENT_KINDS = (
    ("siem", "Splunk audit collector"), ("cicd", "GitHub Actions deploy"),
    ("automation", "Ops automation bot"), ("siem", "Datadog audit pull"),
    ("cicd", "Jenkins release pipeline"), ("automation", "Terraform provider"),
)  # fmt: skip

BROWSER_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
)

API_USER_AGENTS = {
    "siem": ("Splunk-TA-auditlog/3.1.0", "Datadog-Agent/7.58.2", "python-requests/2.32.3"),
    "cicd": ("GitHub-Actions/2.321.0", "Jenkins/2.479.1", "curl/8.7.1"),
    "automation": ("Terraform/1.9.8 terraform-provider-platform/0.4.0", "Go-http-client/2.0"),
}

ATTACK_USER_AGENTS = (
    "python-requests/2.31.0",
    "curl/7.68.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:45.0) Gecko/20100101 Firefox/45.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 zgrab/0.x",
)

ISP_FIRST_OCTETS = (24, 47, 67, 73, 81, 84, 86, 92, 98, 108, 151, 176, 188, 217)
OFFICE_FIRST_OCTETS = (12, 38, 52, 62, 63, 64, 80, 195, 198, 203, 209)
CLOUD_FIRST_OCTETS = (3, 13, 18, 34, 35, 52, 54, 104, 140)
ATTACK_FIRST_OCTETS = (5, 31, 37, 45, 46, 77, 91, 103, 185, 193, 194)

GUESSED_LOCAL_PARTS = (
    "admin", "administrator", "test", "info", "support", "it", "root", "sales", "hr",
    "finance", "john.smith", "j.doe", "office", "helpdesk", "backup", "dev",
)  # fmt: skip

IDENTITY_PROVIDERS = ("Okta", "Microsoft Entra ID", "Google Workspace", "OneLogin", "Ping")

RECIPE_START_ERRORS = (
    "Connection 'Salesforce (prod)' is not connected",
    "Trigger configuration is invalid: missing required field 'object'",
    "Recipe has unsaved changes",
    "Plan limit reached: 50 active recipes",
)

AUTO_STOP_REASONS = (
    ("error_limit", "Stopped after 10 consecutive job errors"),
    ("connection_failed", "401 Unauthorized: refresh token expired or revoked"),
    ("trigger_error", "Trigger poll failed: 503 Service Unavailable"),
    ("plan_limit", "Monthly task limit of the plan reached"),
)

CONNECT_ERRORS = (
    "401 Unauthorized: invalid client secret",
    "OAuth consent was not granted",
    "Host unreachable: connection timed out after 30 s",
    "SSL certificate verify failed: self-signed certificate",
    "403 Forbidden: API access is not enabled for this user",
)

IMPORT_ERRORS = (
    "Package was exported by a newer platform version",
    "Connection 'NetSuite' referenced by 3 recipes is missing in the target",
    "Archive is corrupt: unexpected end of zip file",
)

DEPLOY_ERRORS = (
    "Recipe 'Sync invoices' failed validation in the target environment",
    "Target environment is locked by another deployment",
    "Lookup table schema differs in the target environment",
)

STREAM_ERRORS = (
    "403 AccessDenied: the role cannot PutObject in bucket audit-archive",
    "HTTP 401 from collector: invalid HEC token",
    "HTTP 503 from collector after 12 retries",
    "DNS lookup failed for logs.example-collector.net",
)

REJECT_COMMENTS = (
    "Please add error handling to the NetSuite step first.",
    "Hold until the quarter-end freeze is over.",
    "Missing the updated lookup table in the manifest.",
)

SCHEDULES = ("*/5 * * * *", "*/15 * * * *", "0 * * * *", "0 6 * * 1-5", "30 2 * * *")
