"""ROS 2 tools around the node, reached only from the command line: bag replay and record, the
tabletop demo source and `make demo`, the client, child-process helpers and the latency benchmark."""
