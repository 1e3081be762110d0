"`python -m hifigan_ruslan` runs the `hifigan-ruslan` console script."
import sys
from hifigan_ruslan.cli import main

if __name__ == "__main__":
    sys.exit(main())
