"""After the print: users and signatures, devices, post-processing, sterilization loads, inspection, release."""
