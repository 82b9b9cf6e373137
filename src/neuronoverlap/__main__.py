from neuronoverlap.cli import main

raise SystemExit(main())
