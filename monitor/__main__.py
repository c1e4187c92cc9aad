from monitor.ops.cli import main

raise SystemExit(main())
