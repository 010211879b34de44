"""The stream processors: the Faust app, topic definitions, thin agents and the pure logic beside them."""
