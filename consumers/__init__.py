"""The ClickHouse writer consumer group and the table migrations it writes into."""
