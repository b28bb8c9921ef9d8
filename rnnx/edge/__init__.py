"""What a board needs to run an artifact without Python: TVM's runtime libraries for its architecture
(`tvm_runtime`), and a bundle of native programs beside the compiled libraries (`vm_bundle`)."""
