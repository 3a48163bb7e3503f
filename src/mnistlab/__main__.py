import sys

from mnistlab.cli.main import main

sys.exit(main())
