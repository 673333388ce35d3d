from fabctl.cli import main

main()
