"""Images and data: MNIST files, the drawn training digits, augmentation, preprocessing."""
