from bench.experts.run import main

raise SystemExit(main())
