// A file the user dropped or chose, decoded as an image: the pages that read photos (mnist, classifier,
// detector) share it, so a file that is not an image is told apart from a model that fails.

// Resolves to the decoded HTMLImageElement, or null when the browser cannot read `file` as an image.
export async function imageFromFile(file) {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } catch {
    return null;
  } finally {
    URL.revokeObjectURL(url);
  }
}
