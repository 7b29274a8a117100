from runicorn.cli import main

main()
