from strato.cli.main import main

main()
