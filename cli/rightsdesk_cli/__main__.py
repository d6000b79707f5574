from rightsdesk_cli.main import app

app(prog_name="rightsdesk")
