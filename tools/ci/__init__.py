"""What checks the build, in `make test`, `make check-report` and the GitHub workflows: layer sizes, the report
in a real browser, the workflow linters, the cdk-nag summary and the workflows' plan of stages."""
