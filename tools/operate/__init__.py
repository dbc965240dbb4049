"""Commands that operate a deployed stage (webhook, chats, target, etl run, import-history, query, report, status).

Most also run against this machine's emulation (`--local`, see tools/local/).
"""
