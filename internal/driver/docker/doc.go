// Package docker is the driver that runs each task as a Docker container on
// the local engine (API 1.41 and later, so Debian's docker.io 20.10 works).
//
// Every container carries labels that tie it to its node and task
// (berth.node, berth.task, berth.app, berth.service, berth.slot, ...), so the
// driver keeps no state of its own: a restarted agent finds its containers
// again with List, and several agents sharing one engine (the test harness
// does this) each see only their own. Restart policy is always "no": berth,
// not the engine, decides when a task is replaced.
//
// Images. Start uses the service's ImageID when the engine holds it (a
// build on this engine, an earlier pull), else pulls: a ClusterImage
// (pushed by the CLI to the managers' registry) through the agent's
// pull-through endpoint, Config.Registry ("127.0.0.1:7703/<ClusterImage>"),
// any other image by its name. The pull policy decides when: "always"
// pulls even a present image (but a build pinned by ID with no
// ClusterImage, which no registry holds), "never" never pulls and fails
// naming the image, anything else pulls a missing one. Concurrent starts of one image
// share one pull, and its progress ("pulling image web: 3 of 5 layers,
// 40 MB of 100 MB") goes to TaskConfig.Progress about once a second.
//
// What Start prepares besides the container, and who cleans it up:
//   - Compose networks become Docker networks "<app>_<name>" (labels
//     berth.app and com.docker.compose.project); each container joins every
//     network its service attaches to, under the service name and its
//     aliases, so Docker's DNS resolves a service name to all its replicas
//     on that network only. RemoveApp deletes them. With a slice of the
//     cluster overlay (TaskConfig.Slices) the network's subnet and address
//     range are the slice, its gateway the slice's, its MTU the overlay's
//     and its bridge "brt-" and a hash of the name (netslice.go); one of
//     the name on another subnet is remade if no container is on it.
//     Status.Addresses are a running container's addresses by network.
//   - Named volumes become Docker volumes "<app>_<name>"; RemoveApp deletes
//     them only when asked. External networks and volumes are never made or
//     removed.
//   - Secrets and configs are written as files and bind-mounted read-only at
//     their targets. Secrets live on a tmpfs (DataDir if it is one, else
//     /run/berth/<node>/secrets, mounted by the driver when needed) and never
//     touch persistent disk; a task with secrets fails to start if no tmpfs
//     can be had. Remove deletes a task's files.
//
// Usage:
//
//	d, err := docker.New(ctx, docker.Config{NodeID: "n1", DataDir: dir})
//	...
//	defer d.Close()
//	st, err := d.Start(ctx, &driver.TaskConfig{...})
package docker
