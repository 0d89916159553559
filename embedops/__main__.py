from embedops.cli import main

main()
