import sys

from experiments.reports import main

sys.exit(main())
