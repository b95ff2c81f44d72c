from gradcam_viewer.cli import main

raise SystemExit(main())
